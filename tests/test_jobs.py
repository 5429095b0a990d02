"""The domain: request parsing, validation against capabilities, legal transitions."""

from __future__ import annotations

import pytest

from tui.jobs import (
    JobRequest,
    JobState,
    ModelCaps,
    TransitionError,
    ValidationError,
    check_transition,
    progress_of,
    validate_request,
)

CAPS = ModelCaps(provider="venice", id="m", name="M", model_type="text-to-video",
                 durations=("5s", "10s"), resolutions=("720p",), aspect_ratios=("16:9",),
                 audio=True, audio_configurable=False, prompt_limit=10,
                 negative_prompt_limit=5, options=("shot_type",))
I2V = ModelCaps(provider="venice", id="i", name="I", model_type="image-to-video",
                durations=("5s",), requires_image=True, accepts_image=True)


def test_a_valid_request_passes():
    validate_request(JobRequest(model="m", prompt="a fox", duration="10s", resolution="720p",
                                aspect_ratio="16:9", options={"shot_type": "multi"}), CAPS)


@pytest.mark.parametrize(("changes", "message"), [
    ({"prompt": "x" * 11}, "at most 10"),
    ({"prompt": "  "}, "empty"),
    ({"duration": "7s"}, "duration 7s"),
    ({"duration": "five"}, "not a number"),
    ({"resolution": "1080p"}, "resolution 1080p"),
    ({"aspect_ratio": "1:1"}, "aspect ratio 1:1"),
    ({"audio": False}, "does not let you switch audio"),
    ({"negative_prompt": "x" * 6}, "negative prompt"),
    ({"image_url": "https://x/y.png"}, "takes no image"),
    ({"options": {"bogus": 1}}, "bogus"),
])
def test_each_constraint_refuses_with_one_line(changes, message):
    req = JobRequest(**{"model": "m", "prompt": "ok", **changes})
    with pytest.raises(ValidationError, match=message) as err:
        validate_request(req, CAPS)
    assert "\n" not in str(err.value)


def test_image_to_video_needs_a_fetchable_image():
    with pytest.raises(ValidationError, match="give an image"):
        validate_request(JobRequest(model="i", prompt="ok"), I2V)
    with pytest.raises(ValidationError, match="http"):
        validate_request(JobRequest(model="i", prompt="ok", image_url="/etc/passwd"), I2V)
    validate_request(JobRequest(model="i", prompt="ok", image_url="data:image/png;base64,AA=="),
                     I2V)


def test_aspect_ratio_on_a_model_without_them_is_refused():
    with pytest.raises(ValidationError, match="takes no aspect ratio"):
        validate_request(JobRequest(model="i", prompt="ok", image_url="https://x/a.png",
                                    aspect_ratio="16:9"), I2V)


def test_from_dict_reads_batch_lines_and_refuses_bad_types():
    req = JobRequest.from_dict({"model": "m", "prompt": "p", "duration": 5, "shot_type": "x"})
    assert req.duration == "5s" and req.options == {"shot_type": "x"}
    for bad, msg in [({"prompt": "p"}, "model"), ({"model": "m"}, "prompt"),
                     ({"model": "m", "prompt": "p", "audio": "yes"}, "audio"),
                     ({"model": "m", "prompt": "p", "seed": "1"}, "seed"),
                     ({"model": "m", "prompt": "p", "duration": []}, "duration")]:
        with pytest.raises(ValidationError, match=msg):
            JobRequest.from_dict(bad)


def test_to_dict_sends_only_what_was_set_and_round_trips():
    req = JobRequest(model="m", prompt="p")
    assert set(req.to_dict()) == {"model", "prompt", "duration", "provider"}
    assert JobRequest.from_json(req.to_json()) == req


def test_transitions_follow_the_lifecycle():
    check_transition(JobState.PENDING, JobState.SUBMITTING)
    check_transition(JobState.SUBMITTING, JobState.UNKNOWN)
    check_transition(JobState.DOWNLOADING, JobState.DONE)
    for old, new in [(JobState.DONE, JobState.QUEUED), (JobState.UNKNOWN, JobState.SUBMITTING),
                     (JobState.PENDING, JobState.DONE), (JobState.FAILED, JobState.PENDING)]:
        with pytest.raises(TransitionError):
            check_transition(old, new)


def test_progress_is_clamped_and_says_overdue():
    assert progress_of(30, 60) == (0.5, False)
    assert progress_of(90, 60) == (0.99, True)  # never a fake 100 %
    assert progress_of(10, None) == (None, False)


def test_settling_an_unknown_job():
    from tui.jobs import Job, settle_unknown

    job = Job(id=3, request=JobRequest(model="m", prompt="p"), state=JobState.UNKNOWN,
              created_at=10.0, updated_at=20.0, quote_usd=0.25)
    not_charged = settle_unknown(job, charged=False, now=30.0)
    assert not_charged.state == JobState.CANCELLED and not_charged.fields["cost_usd"] == 0.0
    charged = settle_unknown(job, charged=True, now=30.0)
    assert charged.state == JobState.CANCELLED
    assert charged.fields["cost_usd"] == 0.25 and charged.fields["submitted_at"] == 20.0
    followed = settle_unknown(job, charged=True, now=30.0, remote_id=" abc-123 ")
    assert followed.state == JobState.QUEUED and followed.fields["remote_id"] == "abc-123"
    for bad in ("two words", "", "x" * 201):
        with pytest.raises(ValidationError, match="remote id"):
            settle_unknown(job, charged=True, now=30.0, remote_id=bad)
    with pytest.raises(ValidationError, match="not unknown"):
        settle_unknown(job.with_(state=JobState.DONE), charged=True, now=30.0)
    for settled in (not_charged, charged, followed):
        check_transition(JobState.UNKNOWN, settled.state)
