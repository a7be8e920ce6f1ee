"""moto's server with DynamoDB requests serialised.

moto serves each request on its own thread and its DynamoDB backend takes no lock, so two
conditional writes to the same item can both pass their condition: real DynamoDB never
lets that happen, and the claim, the state transitions and the review's "two runs at once"
rely on it. One lock around every DynamoDB action makes the emulator as atomic as the
service. S3 and SQS stay concurrent (SQS long polls must not block DynamoDB calls).
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    sys.exit(main())
