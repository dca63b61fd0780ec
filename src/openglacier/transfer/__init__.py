"""Client side of OpenGlacier: talks to any Glacier endpoint (OpenGlacier or AWS)
through boto3, for `openglacier vault|archive|job|inventory|migrate`.

Nothing here imports the server: a user of the transfer client needs only the
endpoint's URL and the usual AWS configuration.
"""
