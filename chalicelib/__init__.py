"""The nshub service: everything the Chalice app in app.py calls."""
