"""Amazon SNS messages: checking their signature, and confirming a subscription.

SES sends bounces and complaints through an SNS topic, which posts to our
endpoint. Anyone can post a message shaped like SNS's, so each is verified
as AWS documents: the signing certificate is fetched only from a URL that
matches `feedback.sns_certificate_url_pattern` (by default an https
`sns.<region>.amazonaws.com` address), the fields of the message are joined
in the documented order into the string that was signed, and the signature
is checked with the certificate's RSA key (SHA1 for SignatureVersion 1,
SHA256 for 2). The topic must be one of `feedback.ses_topic_arns`: a valid
signature only proves that *some* SNS topic sent it. A subscription
confirmation is answered by fetching its SubscribeURL, checked against the
same pattern.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.feedback.signatures import Unverified

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERTIFICATE_LIMIT = 64 * 1024


def string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    names = NOTIFICATION_FIELDS if kind == "Notification" else SUBSCRIPTION_FIELDS
    parts = []
    for name in names:
        if name in message and message[name] is not None:
            parts.append(f"{name}\n{message[name]}\n")
        elif name != "Subject":
            raise Unverified(f"an SNS {kind} message without {name}")
    return "".join(parts).encode("utf-8")


class SNSVerifier:
    """Verifies SNS messages; keeps the certificates it fetched (they rarely change)."""

    def __init__(self, url_pattern: str, timeout: float = 10.0) -> None:
        self.url_pattern = re.compile(url_pattern)
        self.timeout = timeout
        self._certificates: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def check_url(self, url: str, what: str) -> None:
        if not isinstance(url, str) or self.url_pattern.match(url) is None:
            raise Unverified(f"the {what} {url!r} is not an SNS address")

    def verify(self, message: dict[str, Any]) -> None:
        version = str(message.get("SignatureVersion", ""))
        algorithm = SIGNATURE_HASHES.get(version)
        if algorithm is None:
            raise Unverified(f"unknown SNS SignatureVersion {version!r}")
        url = message.get("SigningCertURL") or message.get("SigningCertUrl") or ""
        self.check_url(url, "signing certificate URL")
        key = self._certificate(url)
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, binascii.Error, ValueError):
            raise Unverified("the SNS signature does not match") from None

    def _certificate(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            if url in self._certificates:
                return self._certificates[url]
        try:
            response = requests.get(url, timeout=self.timeout)
            response.raise_for_status()
            if len(response.content) > CERTIFICATE_LIMIT:
                raise Unverified("the SNS signing certificate is too large")
            certificate = x509.load_pem_x509_certificate(response.content)
        except (requests.RequestException, ValueError) as exc:
            raise Unverified(f"cannot fetch the SNS signing certificate: {exc}") from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unverified("the SNS signing certificate has no RSA key")
        with self._lock:
            self._certificates[url] = key
        return key

    def confirm(self, message: dict[str, Any]) -> None:
        """Answer a SubscriptionConfirmation by visiting its SubscribeURL."""
        url = str(message.get("SubscribeURL", ""))
        self.check_url(url, "SubscribeURL")
        try:
            requests.get(url, timeout=self.timeout).raise_for_status()
        except requests.RequestException as exc:
            raise Unverified(f"cannot confirm the SNS subscription: {exc}") from None
