"""What the operator commands (python -m dr, python -m dashboards, python -m pipeline) share:

  ops.regions    both regions of one stage as an operator reaches them: clients with the operator
                 profile, the tables, the regional stack's outputs (the alert topic)
  ops.stacks     CloudFormation: create or update a stack and wait for it, and its outputs
  ops.templates  the project's CloudFormation YAML as data, and Ref/Sub resolved from parameters

Names (tables, stacks, topics, functions, dashboards, alarms) and the client profiles live in
chalicelib (names.py, clients.py), which the Lambda functions need too. Nothing in the Lambda
package imports ops.
"""
