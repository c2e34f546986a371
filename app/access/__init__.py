"""Collections and who may read them: the rule (policy.py) and an admin's changes
(collections.py)."""
