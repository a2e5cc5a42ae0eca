//! The Client Portal mapping for news (FYI notifications) and trading sessions and holidays (issue 16).
