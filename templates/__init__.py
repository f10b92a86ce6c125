"""The mail templates mailgate ships (installed as the package `mailgate.templates`).

This file only makes the folder a package, so that the templates travel inside a wheel
as package data and `importlib.resources` finds them wherever mailgate is installed.
"""
