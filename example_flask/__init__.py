"""A Flask app serving the demo agents over ACP (see ``example_flask.app``)."""
