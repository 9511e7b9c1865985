"""The course's generated world and its model zoo.

- :mod:`.world`: the generated world of English-like text and its hidden labels;
- :mod:`.tokenizer`: the word-level tokenizer (shipped as Hugging Face files in ``data/tokenizer``);
- :mod:`.models`: ``available()`` and ``load(name)`` for the shipped models (``data/models``) and hub models;
- :mod:`.training`: each shipped model's recipe and the trainer (``mi-course train <name>``);
- :mod:`.metrics`: the measurements on each model's card.

Chapters import the zoo; the zoo imports no chapter except :mod:`mi_course.induction.head_scores`
(the card's induction metrics), which therefore never imports the zoo back.
Nothing is imported here, so ``mi_course.zoo.world`` loads without transformer_lens.
"""
