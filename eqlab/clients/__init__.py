"""Client certification: the lab plays the platform for a vendor's client and judges what it sends.

A recording reverse proxy (``proxy``) stands in front of the platform the plan names; every request
the client sends through it lands in a ``journal`` tagged with the scenario and step during which it
arrived, with its secrets sealed (``sealing``): checks can still compare them, nobody can use them.
``matchers`` say which requests a step expects, and which ones the platform answers with an
injected failure (503 with ``Retry-After``, 401 ``invalid_token``…) to judge how the client recovers.
"""
