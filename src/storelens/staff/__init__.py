"""Reaching staff: live fan-out to their devices, alerts and member notices (first to claim).

``raise_notice`` is how code in the server process (recognition at the entrance)
announces a member; devices elsewhere post ``POST /v1/notices``.
"""

from storelens.staff.notices import Notice, NoticeDesk, raise_notice

__all__ = ["Notice", "NoticeDesk", "raise_notice"]
