import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGuiActions } from '../../src/processing/parse_gui.ts';

const size = { width: 2560, height: 1440 };

test('computer: thought + click, pixel centre on the screenshot', () => {
  const r = parseGuiActions("Thought: The search box is at the top.\nAction: click(point='<point>131 250</point>')", { grammar: 'computer', size });
  assert.equal(r.thought, 'The search box is at the top.');
  assert.equal(r.actions.length, 1);
  const a = r.actions[0]!;
  assert.equal(a.action, 'click');
  assert.deepEqual(a.start!.raw, [131, 250]);
  assert.deepEqual(a.start!.box, [0.131, 0.25, 0.131, 0.25]);
  assert.ok(Math.abs(a.start!.pixel!.x - 335.36) < 1e-9 && a.start!.pixel!.y === 360);
  assert.deepEqual(r.issues, []);
});

test('full-width colons, extra spaces and several actions separated by blank lines', () => {
  const text = "Thought： open the file\n\nAction：  drag(start_point='<point>10 20</point>', end_point='<point>30 40</point>')\n\nhotkey(key='ctrl  C')\n\ntype(content='hello\\n')";
  const r = parseGuiActions(text, { grammar: 'computer' });
  assert.deepEqual(r.actions.map((a) => a.action), ['drag', 'hotkey', 'type']);
  assert.deepEqual(r.actions[0]!.start!.raw, [10, 20]);
  assert.deepEqual(r.actions[0]!.end!.raw, [30, 40]);
  assert.deepEqual(r.actions[1]!.keys, ['ctrl', 'c']);
  assert.equal(r.actions[2]!.content, 'hello');
  assert.equal(r.actions[2]!.submit, true);
  assert.deepEqual(r.issues, []);
});

test('type content with escaped and unescaped quotes, scroll, wait, finished', () => {
  const r = parseGuiActions("Action: type(content='it\\'s \"fine\"')\nscroll(point='<point>500 500</point>', direction='Down')\nwait()\nfinished(content='done')");
  assert.deepEqual(r.actions.map((a) => a.action), ['type', 'scroll', 'wait', 'finished']);
  assert.equal(r.actions[0]!.content, 'it\'s "fine"');
  assert.equal(r.actions[0]!.submit, undefined);
  assert.equal(r.actions[1]!.direction, 'down');
  assert.equal(r.actions[3]!.content, 'done');
  const u = parseGuiActions("Action: type(content='don't stop')");
  assert.equal(u.actions[0]!.content, "don't stop");
});

test('mobile grammar: open_app, long_press, press_back; unknown actions are flagged', () => {
  const r = parseGuiActions("Thought: go\nAction: open_app(app_name='Settings')\n\nlong_press(point='<point>1 2</point>')\n\npress_back()", { grammar: 'mobile' });
  assert.deepEqual(r.actions.map((a) => a.action), ['open_app', 'long_press', 'press_back']);
  assert.equal(r.actions[0]!.appName, 'Settings');
  assert.deepEqual(r.issues, []);
  const bad = parseGuiActions("Action: hotkey(key='ctrl c')", { grammar: 'mobile' });
  assert.match(bad.issues[0]!.reason, /not in the mobile action space/);
});

test('other coordinate forms: bbox, (x,y), [x1,y1,x2,y2], box tokens, start_box', () => {
  const r = parseGuiActions(
    "Action: click(start_box='<bbox>637 964 637 964</bbox>')\nclick(start_box='(100,200)')\nclick(start_box='[100, 200, 300, 400]')\nclick(start_box='<|box_start|>(5,6)<|box_end|>')",
  );
  assert.deepEqual(r.actions.map((a) => a.start!.box), [
    [0.637, 0.964, 0.637, 0.964],
    [0.1, 0.2, 0.1, 0.2],
    [0.1, 0.2, 0.3, 0.4],
    [0.005, 0.006, 0.005, 0.006],
  ]);
  assert.deepEqual(r.issues, []);
});

test('reflection and action summary sections; bare grounding output', () => {
  const r = parseGuiActions("Reflection: that failed\nAction_Summary: retry the button\nAction: click(point='<point>1 1</point>')");
  assert.equal(r.reflection, 'that failed');
  assert.equal(r.summary, 'retry the button');
  assert.equal(r.thought, 'retry the button');
  const g = parseGuiActions("click(point='<point>10 10</point>')", { grammar: 'grounding' });
  assert.equal(g.actions[0]!.action, 'click');
});

test('malformed replies: no Action, truncated call, junk, bad coordinates', () => {
  assert.match(parseGuiActions('Thought: hmm').issues[0]!.reason, /no "Action:"/);
  const t = parseGuiActions("Action: click(point='<point>1 2</point>'");
  assert.equal(t.actions.length, 1);
  assert.match(t.issues.map((i) => i.reason).join(';'), /not closed/);
  const j = parseGuiActions('Action: I would click the button');
  assert.equal(j.actions.length, 0);
  assert.match(j.issues[0]!.reason, /not an action call/);
  const c = parseGuiActions("Action: click(point='<point>abc</point>')");
  assert.equal(c.actions[0]!.start, undefined);
  assert.match(c.issues[0]!.reason, /cannot read coordinates/);
  // "Action:" inside typed text is not a section label.
  const s = parseGuiActions("Thought: x\nAction: type(content='Action: run')");
  assert.equal(s.actions[0]!.content, 'Action: run');
});
