"""Chat capture: every message of a policy user's Teams chats and meeting chats, with each edit and deletion,
received as encrypted change notifications, back-filled through the Teams export API, and sealed as evidence."""
