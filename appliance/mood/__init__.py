"""Face readings in, mood out: per-face tracking, smoothing, engagement, shift detection."""

from appliance.mood.mood_tracker import MoodTracker
from appliance.mood.settings import MoodSettings

__all__ = ["MoodSettings", "MoodTracker"]
