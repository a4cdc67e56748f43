"""Pages of lists by limit and offset, the limit bounded: a huge one would reach the
database as a number larger than it holds (a 500), and no client needs more at once."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT
