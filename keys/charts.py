"""The key page's usage chart: bar geometry for an inline SVG drawn by the server (no script,
no CDN). The template draws the rectangles; this computes where they go."""

from dataclasses import dataclass

WIDTH = 600
HEIGHT = 120
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    denied_y: float
    denied_height: float
    day: object
    requests: int
    denied: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    total: int
    denied: int
    first: object
    last: object

    @property
    def description(self) -> str:
        if not self.bars:
            return "No days to show."
        return (
            f"{self.total} requests ({self.denied} denied) from {self.first:%Y-%m-%d} to "
            f"{self.last:%Y-%m-%d} (UTC); at most {self.peak} on one day."
        )


def usage_chart(days, *, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """Return the bars of ``days`` (UsageDay rows, oldest first), scaled to the busiest day."""
    peak = max((d.requests for d in days), default=0)
    slot = width / len(days) if days else width
    bars = []
    for index, day in enumerate(days):
        tall = height * day.requests / peak if peak else 0
        low = height * day.denied / peak if peak else 0
        bars.append(
            Bar(
                x=round(index * slot + GAP / 2, 2),
                y=round(height - tall, 2),
                width=round(max(slot - GAP, 1), 2),
                height=round(tall, 2),
                denied_y=round(height - low, 2),
                denied_height=round(low, 2),
                day=day.day,
                requests=day.requests,
                denied=day.denied,
            )
        )
    return Chart(
        width=width,
        height=height,
        bars=bars,
        peak=peak,
        total=sum(d.requests for d in days),
        denied=sum(d.denied for d in days),
        first=days[0].day if days else None,
        last=days[-1].day if days else None,
    )
