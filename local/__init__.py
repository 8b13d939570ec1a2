"""The local stack: the whole service on one machine, against moto's server. Dev tooling only;
it is not packaged into the Lambda."""
