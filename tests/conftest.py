"""Shared fixtures for the unit tests."""

import pytest

from course_utils import exercises


@pytest.fixture(autouse=True)
def fresh_exercise_attempts():
    """Exercise hints are tiered by attempt; every test starts (and leaves) with no attempts counted."""
    exercises._attempts.clear()
    yield
    exercises._attempts.clear()
