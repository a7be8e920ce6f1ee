"""moto's server, made as atomic as DynamoDB and as fast as SQS needs to be at volume.

DynamoDB: moto serves each request on its own thread and its DynamoDB backend takes no lock,
so two conditional writes to the same item can both pass their condition. Real DynamoDB
never lets that happen, and the claim, the state transitions and the review's "two runs at
once" rely on it. One lock around every DynamoDB action makes the emulator as atomic as the
service. S3 and SQS stay concurrent (SQS long polls must not block DynamoDB calls).

SQS: moto 5.2 recounts every message of a queue (three passes, a datetime per message) each
time it builds a queue's attribute dict, and it builds that dict for every message sent and
every message received; a delete scans the queue twice. So one send costs O(queue length)
and a 20,000-row intake O(n^2): a 3,000-row upload took three minutes, nearly all of it in
those counts. The patches below keep moto's behaviour and answers, and change only the cost:
the counts are made only when GetQueueAttributes asks for them, the clock is read with
time.time() (the same UTC epoch moto computes through datetimes), and a delete stops at the
message it deletes.

Also: a DynamoDB Query no longer sorts the whole table first, and werkzeug's log line per
request is off (each is said where it is patched).
"""

import json
import logging
import sys
import threading
import time

import moto
from moto.core import utils as moto_utils
from moto.dynamodb.models import table as dynamodb_table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main
from moto.sqs import models as sqs

# The patches below replace moto internals as they are in the version the Makefile pins;
# another version must be read again before they apply to it.
PATCHED_FOR = "5.2.5"
if moto.__version__ != PATCHED_FOR:
    sys.exit(f"scripts/moto_server.py patches moto {PATCHED_FOR}, not {moto.__version__}")

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action


def _query_reading_only_what_it_can_match(self, hash_key, *args, **kwargs):
    """moto's Table.query, handed the candidate items instead of the whole table sorted.

    moto sorts every item of the table for each Query, then keeps one partition (a table
    query) or re-sorts the matches by the index's keys (an index query), so listing a
    dispatch of 5,000 messages in a table of 20,000 cost a sort of 20,000. A table query now
    starts from its partition; an index query from the items unsorted, since moto orders its
    matches by the full index and table key afterwards. Results and pages are unchanged.
    """
    # Setting `all_items` on the table for one query is safe: the lock above lets one
    # DynamoDB action run at a time.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if not index_name and self.range_key_attr:
        candidates = lambda: list(self.items.get(hash_key, {}).values())  # noqa: E731
    else:
        candidates = lambda: [  # noqa: E731
            item
            for hash_set in self.items.values()
            for item in (hash_set.values() if self.range_key_attr else [hash_set])
        ]
    self.all_items = candidates
    try:
        return _table_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


_table_query = dynamodb_table.Table.query
dynamodb_table.Table.query = _query_reading_only_what_it_can_match


def _unix_time(dt=None):
    return time.time() if dt is None else moto_utils.unix_time(dt)


def _unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else moto_utils.unix_time_millis(dt)


sqs.unix_time = _unix_time
sqs.unix_time_millis = _unix_time_millis

_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
)
_counting = threading.local()


def _attributes(self):
    """moto's Queue.attributes, with the three counts only when they were asked for."""
    counting = getattr(_counting, "on", False)
    names = [a for a in self.BASE_ATTRIBUTES if counting or a not in _COUNTS]
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:
        names += self.KMS_ATTRIBUTES
    result = {a: getattr(self, moto_utils.camelcase_to_underscores(a)) for a in names}
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}


_get_queue_attributes = sqs.SQSBackend.get_queue_attributes


def _get_queue_attributes_counting_when_asked(self, queue_name, attribute_names):
    asked = "All" in attribute_names or any(n in _COUNTS for n in attribute_names)
    _counting.on = asked
    try:
        return _get_queue_attributes(self, queue_name, attribute_names)
    finally:
        _counting.on = False


sqs.Queue.attributes = property(_attributes)
sqs.SQSBackend.get_queue_attributes = _get_queue_attributes_counting_when_asked


def _delete_message(self, receipt_handle):
    if receipt_handle in self.deleted_messages:
        return
    for index, message in enumerate(self._messages):
        if message.had_receipt_handle(receipt_handle):
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            del self._messages[index]
            return
    raise sqs.ReceiptHandleIsInvalid()


sqs.Queue.delete_message = _delete_message

# One log line per request, written under a lock shared by every thread: at a few hundred
# requests a second that was half of moto's time. Errors are still logged.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

if __name__ == "__main__":
    sys.exit(main())
