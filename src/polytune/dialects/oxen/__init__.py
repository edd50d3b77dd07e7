"""The Oxen.ai dialect: a small repository store and the fine-tune HTTP API, at the server root."""
