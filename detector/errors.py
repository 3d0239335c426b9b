"""The detector's user-facing error: a one-line message, printed by the CLIs without a traceback."""


class DetectorError(ValueError):
    """A problem with the user's input (file, folder, weights, option) described in one line."""
