"""``modelops ui``: the registry as web pages, served on loopback or exported as static files.

``pages`` reads what each page shows from the registry in one pass; ``render`` turns it into
HTML through Jinja2 templates that escape every value (tag messages, reasons, params and
feature names are all user input); ``app`` serves the pages and ``export`` writes them.
"""
