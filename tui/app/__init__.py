"""The dashboard (Textual). Nothing here may be imported by the engine, store or providers."""

import os

# Textual draws at most MAX_FPS frames a second, on a fixed beat: a key that arrives just
# after a frame waits for the next beat (up to 17 ms at Textual's default 60). The frames
# themselves are few (nothing changes, nothing is drawn) and only changed cells reach the
# terminal, so a faster beat costs little and halves that wait. Read once, when Textual is
# first imported; a user's own TEXTUAL_FPS wins.
os.environ.setdefault("TEXTUAL_FPS", "120")
