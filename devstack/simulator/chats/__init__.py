"""Teams chats: 1:1, group and meeting chats among the tenant's users, messages posted, edited and
soft-deleted (control endpoints and scripted scenarios), hosted contents, tenant-wide ``/chats/getAllMessages``
change notifications with encrypted resource data and validation tokens, and the Teams export API
``/users/{id}/chats/getAllMessages``.

Where each part lives: ``model`` (chats, members, messages and their states), ``store`` (the changes),
``payloads`` (Graph JSON), ``encryption`` (encryptedContent), ``tokens`` (validation tokens), ``resource``
(the subscription resource's rules), ``notifier`` (changes -> notifications), ``export_api``, ``graph_api``
(reads of one chat), ``scenarios``, ``sim_api`` (``/sim/chats``), ``service`` (``Chats``).
"""

from .encryption import CertificateError, EncryptionCertificate, encrypt_resource
from .resource import ChatMessagesResource, parse_chat_resource
from .service import Chats
from .sim_api import MeetingRef

__all__ = [
    "CertificateError",
    "ChatMessagesResource",
    "Chats",
    "EncryptionCertificate",
    "MeetingRef",
    "encrypt_resource",
    "parse_chat_resource",
]
