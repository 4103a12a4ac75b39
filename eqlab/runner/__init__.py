"""Running a plan: expand it into checks, run them, stream events, assemble the results."""
