"""The application without Qt: what the window has open, the prompt/edit loop, tools and the
per-image state. ``gui/`` displays this state and forwards user input to it; nothing here imports
Qt (the architecture test enforces it)."""
