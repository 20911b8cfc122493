"""Email templates (Jinja2) and the renderer that fills them: ``email/<kind>.{subject,txt,html}``."""
