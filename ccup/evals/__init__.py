"""Evaluations beyond forget and retain accuracy, chosen with the `eval` config group. Each is a callable
`(evaluator, original, unlearned, task, test_set) -> {metric: value}` that the evaluator runs after its own scores."""
