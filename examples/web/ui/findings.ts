// The per-finding probability table. Each row carries the full-precision value in data-p (the e2e test
// compares it with the Node CLI); clicking a row asks for that finding's relevance map.
export function renderFindings(table: HTMLTableElement, probs: Record<string, number>, selected: string | null, onPick: (finding: string) => void): void {
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren();
  for (const [name, p] of Object.entries(probs)) {
    const row = body.insertRow();
    row.dataset['finding'] = name;
    row.dataset['p'] = String(p);
    row.className = name === selected ? 'selected' : '';
    row.tabIndex = 0;
    row.insertCell().textContent = name.replace(/_/g, ' ');
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    row.insertCell().append(bar);
    row.insertCell().textContent = p.toFixed(3);
    row.onclick = () => onPick(name);
    row.onkeydown = (e) => {
      if (e.key === 'Enter' || e.key === ' ') onPick(name);
    };
  }
}
