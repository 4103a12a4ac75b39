"""What load scenarios (locustfiles in ``suites/load``) may use of the lab."""

from eqlab.runner.load_user import LabHttpUser

__all__ = ["LabHttpUser"]
