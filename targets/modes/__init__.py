"""The auth step of each mode: none, session, jwt, hybrid."""
