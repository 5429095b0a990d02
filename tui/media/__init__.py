"""Media: what a downloaded video really holds.

`probe` opens a file with PyAV (imported lazily: it is slow to load and only needed once a
video is on disk), `facts` holds the pure rules that compare a video with its request, and
`frames` draws pictures of it. Nothing here imports Textual, the engine or the store.
"""
