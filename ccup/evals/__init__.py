"""Evaluations beyond forget and retain accuracy, chosen with the `eval` config group. Each is a callable
`(features, original, unlearned, task, test_set) -> {metric: value}` that the evaluator runs after its own scores;
`features(model, dataset)` gives a model's (N, D) image features before the final projection and the (N,) labels
(ccup.features.Features: the original's are cached, and reused by a model whose image tower is the same)."""
