"""The prediction log: every answer the server gives, in a SQL database, for outcomes, live
metrics, drift and retraining.

    tables.py    the tables, and where the log lives (SANTANDER_LOG_URL, else an SQLite file
                 in the model repository)
    writer.py    what the runtime hands its answers to: queued, batched, never waited for
    child.py     the writer's child process, which inserts the batches
    readers.py   what the commands and the page read
"""
