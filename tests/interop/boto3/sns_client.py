"""boto3 against avs-sim's SNS Query API (issue 9 item 8).

Run by tests/tests/sns_query.rs with the venv's python:
    python sns_client.py http://127.0.0.1:<plain port>
Starts a local HTTP subscriber, then walks the whole subset through boto3;
any failure raises (non-zero exit). Prints "boto3 interop: ok" at the end.
"""

import json
import queue
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
DEADLINE = 20

received = queue.Queue()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received.put((dict(self.headers), body.decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = "http://127.0.0.1:%d/hook" % server.server_address[1]


def next_message(kind):
    """The next POST of type `kind` (others are skipped)."""
    while True:
        headers, body = received.get(timeout=DEADLINE)
        if headers.get("x-amz-sns-message-type") == kind:
            return headers, body


sns = boto3.client(
    "sns",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="x",
    aws_secret_access_key="x",
)

arn = sns.create_topic(Name="boto3-topic", Attributes={"DisplayName": "boto3"})["TopicArn"]
assert arn == "arn:aws:sns:us-east-1:000000000000:boto3-topic", arn
sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
assert attrs["SignatureVersion"] == "2", attrs
assert attrs["DisplayName"] == "boto3", attrs
assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]

sub = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=hook, ReturnSubscriptionArn=True)["SubscriptionArn"]
assert sub.startswith(arn + ":"), sub
assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "true"

# The SubscriptionConfirmation reaches the hook; confirm with its token.
_, body = next_message("SubscriptionConfirmation")
confirmation = json.loads(body)
assert confirmation["TopicArn"] == arn, confirmation
confirmed = sns.confirm_subscription(TopicArn=arn, Token=confirmation["Token"])["SubscriptionArn"]
assert confirmed == sub, (confirmed, sub)
sub_attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
assert sub_attrs["PendingConfirmation"] == "false", sub_attrs
assert sub_attrs["Endpoint"] == hook, sub_attrs

sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue='{"kind": ["a"]}')
assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["FilterPolicy"] == '{"kind": ["a"]}'
assert sub in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
assert [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]] == [hook]

mid = sns.publish(
    TopicArn=arn,
    Message="hello from boto3",
    Subject="greeting",
    MessageAttributes={"kind": {"DataType": "String", "StringValue": "a"}, "n": {"DataType": "Number", "StringValue": "3"}},
)["MessageId"]
assert len(mid) == 36, mid
headers, body = next_message("Notification")
note = json.loads(body)
assert note["MessageId"] == mid and note["Message"] == "hello from boto3", note

batch = sns.publish_batch(
    TopicArn=arn,
    PublishBatchRequestEntries=[
        {"Id": "one", "Message": "m1", "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "a"}}},
        {"Id": "two", "Message": "m2", "Subject": "s"},
    ],
)
assert sorted(s["Id"] for s in batch["Successful"]) == ["one", "two"], batch
assert batch.get("Failed", []) == [], batch

try:
    sns.get_topic_attributes(TopicArn="arn:aws:sns:us-east-1:000000000000:nope")
    raise AssertionError("a missing topic must fail")
except ClientError as e:
    assert e.response["Error"]["Code"] == "NotFound", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response

try:
    sns.confirm_subscription(TopicArn=arn, Token="bogus")
    raise AssertionError("a bad token must fail")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameter", e.response
    assert e.response["Error"]["Message"] == "Invalid parameter: Token", e.response

sns.unsubscribe(SubscriptionArn=sub)
next_message("UnsubscribeConfirmation")
assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
sns.delete_topic(TopicArn=arn)
assert arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
server.shutdown()
print("boto3 interop: ok")
