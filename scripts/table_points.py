"""The evaluation table's bars on a page driven by Selenium: where each is on screen, and a mouse
move or click onto one, as a user does. The bars are SVG paths drawn by layout shapes, with no
element a bar: trace 0 holds a point at each bar's slot (app/figures/evaltable.py), placed on
screen here from its data and the plot's axes. Shared by scripts/screenshots.py and the browser tests."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from app import ids

DRAWN = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData || !gd._fullData.length || !gd._fullLayout) return null;
const t = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
return {
  paths: Object.fromEntries((gd.layout.shapes || []).filter(s => s.name).map(s => [s.name, s.path])),
  ids: Array.from(t.customdata || [], c => c[0]), x: Array.from(t.x || []), y: Array.from(t.y || []),
  screen: Array.from(t.x || [], (x, i) => [box.left + xa._offset + xa.c2p(x), box.top + ya._offset + ya.c2p(t.y[i])]),
};
"""


def drawn(driver, graph_id: str = ids.EVAL_TABLE) -> dict | None:
    """The drawn table: its named shapes' paths, its points' models, data and screen positions."""
    return driver.execute_script(DRAWN, graph_id)


IN_SIGHT = """
const y = arguments[0], box = document.getElementById(arguments[1]), frame = box.getBoundingClientRect();
if (box.contains(document.querySelector('#' + arguments[2])) && (y < frame.top + 20 || y > frame.bottom - 20))
  box.scrollBy({top: y - (frame.top + frame.bottom) / 2, behavior: 'instant'});
else if (y < 60 || y > window.innerHeight - 60) window.scrollBy({top: y - window.innerHeight / 2, behavior: 'instant'});
"""


def point_to(driver, index: int, graph_id: str = ids.EVAL_TABLE, nudge: int = 0) -> None:
    """Move the mouse onto the table's bar `index` (its slot's centre, `nudge` px to the right), as a
    user does: scrolled into sight first, in the table's box (it scrolls), then in the window."""
    for _ in range(2):  # the box, then the window (Bootstrap's smooth scrolling left out: at once)
        driver.execute_script(IN_SIGHT, drawn(driver, graph_id)["screen"][index][1], ids.EVAL_KEYS, graph_id)
    x, y = drawn(driver, graph_id)["screen"][index]
    action = ActionBuilder(driver)
    action.pointer_action.move_to_location(int(round(x)) + nudge, int(round(y)))
    action.perform()


def click(driver, index: int, graph_id: str = ids.EVAL_TABLE) -> None:
    """Click the table's bar `index`, as a user does."""
    point_to(driver, index, graph_id)
    ActionChains(driver).click().perform()
