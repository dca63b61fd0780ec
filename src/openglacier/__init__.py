"""OpenGlacier: an Amazon Glacier (vault API 2012-06-01) compatible archive server."""

__version__ = "0.1.0"
API_VERSION = "2012-06-01"
