"""The Qt desktop app, on top of the core."""
