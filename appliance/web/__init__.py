"""The LAN web page: FastAPI app (app.py), live event fan-out (event_hub.py), static page."""
