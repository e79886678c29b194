"""The high-fidelity judge process (``alignloop judge``): one escalation in, labels / preferences / human-queue
items out (``step``, pure) and the consume-judge-publish loop (``worker``)."""
