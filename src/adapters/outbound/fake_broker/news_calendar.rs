//! The fake broker's answers for news (FYI notifications) and trading sessions and holidays (issue 16).
