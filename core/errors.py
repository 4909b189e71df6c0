"""The one exception type that means "the user's input is wrong"; its message is one line."""


class FacetError(Exception):
    """Bad input or an impossible request. The CLI prints ``error: <message>`` and exits 2."""
