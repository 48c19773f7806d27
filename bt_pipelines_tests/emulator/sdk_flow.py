"""Run by test_official_clients in a fresh interpreter: the braintrust SDK's own flows, as a user writes them."""

import json

import braintrust

logger = braintrust.init_logger(project="sdk-project")
with logger.start_span(name="answer", input={"q": "hi"}) as root:
    with root.start_span(name="chat", type="llm", input=[{"role": "user", "content": "hi"}]) as child:
        child.log(output="hello", metrics={"prompt_tokens": 3, "completion_tokens": 1})
        with child.start_span(name="lookup", type="tool") as tool:
            tool.log(output={"found": True})
    root.log(output={"answer": "hello"}, metadata={"model": "m"}, tags=["t1"])
logger.flush()
root.log(scores={"accuracy": 0.9})  # feedback merged in after the span was flushed
logger.flush()

dataset = braintrust.init_dataset(project="sdk-project", name="golden")
ids = [dataset.insert(input={"i": i}, expected={"e": i}, metadata={"m": i}) for i in range(5)]
dataset.flush()
dataset.update(id=ids[0], expected={"e": 100})
dataset.delete(ids[4])
dataset.flush()
read_back = list(braintrust.init_dataset(project="sdk-project", name="golden"))
print(json.dumps({"root_id": root.id, "root_span_id": root.root_span_id, "dataset_ids": ids,
                  "dataset_rows": read_back}, default=str))
