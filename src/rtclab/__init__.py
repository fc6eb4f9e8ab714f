"""rtclab: the lab toolkit that Last Mile Academy's samples and notebooks import."""
