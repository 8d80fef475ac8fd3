"""The store: its ceiling, its distance, the state it holds and the scale-out model it bounds."""
