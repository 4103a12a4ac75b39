"""Evidence: every HTTP exchange a check makes, captured with secrets redacted."""
