"""Drift monitoring: ad hoc drift reports, and monitors over the inputs that endpoints collect."""
