"""Alerting: the rules engine (a pure function), its state and history, e-mail, CERT-FR."""
