"""ClickVote: likes, upvotes and star ratings with live updates for any web page."""

__version__ = "0.1.0"
