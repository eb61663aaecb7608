"""Configuration as code: an owner's monitors, tags, alert rules, channels and
maintenance windows as a YAML or JSON file (export, apply with a dry run), and imports
from other monitoring tools' files into the same document."""
