/**
 * The web page: sign in, a roster with live presence dots, last-seen and device counts, a chat
 * pane with delivered/read ticks, and the number of people online. On the SDK over MQTT over
 * WebSocket; one deviceId per tab (sessionStorage), so two tabs never take each other over.
 */
import { HeraldClient, type Message, type PresenceDoc, type Receipt, RejectedError } from '../sdk/index.js'

interface Person {
  doc?: PresenceDoc
  devices: number
}

interface ChatLine {
  id: string
  from: string
  text: string
  ticks: '' | 'sent' | 'delivered' | 'read' | 'failed'
  /** Why Herald refused it (ticks = failed). */
  error?: string
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

const state = {
  me: '',
  token: '',
  client: undefined as HeraldClient | undefined,
  people: new Map<string, Person>(),
  chats: new Map<string, ChatLine[]>(),
  open: undefined as string | undefined,
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}

/**
 * Device counts come from the HTTP view (SDK `query()`): the presence topic changes only on
 * user-level edges, so a second device coming or going is not published there. Asked on every
 * edge and every 5 s.
 */
async function refreshDevices(userIds: string[] = [...state.people.keys()]): Promise<void> {
  if (userIds.length === 0 || !state.client) return
  const results = await state.client.query(userIds).catch(() => undefined)
  if (!results) return
  for (const [userId, view] of Object.entries(results)) {
    const p = state.people.get(userId)
    if (p) p.devices = view.connections
  }
  render()
}

function render(): void {
  const roster = $('roster')
  roster.replaceChildren()
  let online = 0
  for (const [userId, p] of [...state.people].sort(([a], [b]) => a.localeCompare(b))) {
    const li = document.createElement('li')
    li.dataset.user = userId
    if (state.open === userId) li.classList.add('active')
    const dot = document.createElement('span')
    const status = !p.doc?.online
      ? 'offline'
      : p.doc.status === 'away' || p.doc.status === 'busy'
        ? p.doc.status
        : 'online'
    if (p.doc?.online) online += 1
    dot.className = `dot ${status}`
    dot.dataset.status = status
    const name = document.createElement('span')
    name.textContent = userId
    const meta = document.createElement('span')
    meta.className = 'meta'
    meta.textContent = p.doc?.online
      ? `${status}${p.devices > 1 ? ` · ${p.devices} devices` : ''}`
      : p.doc?.lastSeen
        ? `seen ${ago(p.doc.lastSeen)}`
        : 'offline'
    li.append(dot, name, meta)
    li.onclick = () => void openChat(userId)
    roster.append(li)
  }
  $('online-count').textContent = `${online} of ${state.people.size} online`
  const box = $('messages')
  box.replaceChildren()
  for (const line of state.open ? (state.chats.get(state.open) ?? []) : []) {
    const div = document.createElement('div')
    div.className = `msg${line.from === state.me ? ' mine' : ''}`
    div.dataset.id = line.id
    div.textContent = line.text
    if (line.from === state.me && line.ticks) {
      const t = document.createElement('span')
      t.className = `ticks ${line.ticks}`
      t.dataset.ticks = line.ticks
      t.textContent = line.ticks === 'failed' ? `✗ ${line.error ?? ''}` : line.ticks === 'sent' ? '✓' : '✓✓'
      t.title = line.ticks
      div.append(t)
    }
    box.append(div)
  }
  box.scrollTop = box.scrollHeight
}

function chatWith(userId: string): ChatLine[] {
  let lines = state.chats.get(userId)
  if (!lines) {
    lines = []
    state.chats.set(userId, lines)
  }
  return lines
}

function text(body: unknown): string {
  if (typeof body === 'string') return body
  if (body && typeof body === 'object' && 'text' in body) return String((body as { text: unknown }).text)
  return JSON.stringify(body)
}

async function addPerson(userId: string): Promise<void> {
  if (!userId || userId === state.me || state.people.has(userId)) return
  state.people.set(userId, { devices: 0 })
  localStorage.setItem(`herald-roster-${state.me}`, JSON.stringify([...state.people.keys()]))
  render()
  await state.client?.watch([userId])
}

async function openChat(userId: string): Promise<void> {
  state.open = userId
  $('chat-title').textContent = `Chat with ${userId}`
  $<HTMLInputElement>('text').disabled = false
  $<HTMLButtonElement>('send').disabled = false
  render()
  // what the other side sent is read once it is on screen
  for (const line of chatWith(userId)) {
    if (line.from === userId) await state.client?.markRead({ id: line.id, from: userId })
  }
}

function onMessage(m: Message): void {
  const lines = chatWith(m.from)
  if (lines.some((l) => l.id === m.id)) return
  lines.push({ id: m.id, from: m.from, text: text(m.body), ticks: '' })
  if (!state.people.has(m.from)) void addPerson(m.from)
  if (state.open === m.from) void state.client?.markRead(m)
  render()
}

function onReceipt(r: Receipt): void {
  for (const lines of state.chats.values()) {
    const line = lines.find((l) => l.id === r.id && l.from === state.me)
    if (!line) continue
    if (r.status === 'rejected') line.ticks = 'failed'
    else if (r.status === 'read') line.ticks = 'read'
    else if (r.status === 'delivered' && line.ticks !== 'read') line.ticks = 'delivered'
  }
  render()
}

function onPresence(doc: PresenceDoc): void {
  const p = state.people.get(doc.userId)
  if (!p) return
  p.doc = doc
  render()
  void refreshDevices([doc.userId])
}

async function signIn(userId: string, token: string): Promise<void> {
  const config = (await (await fetch('/web/config')).json()) as { wsPort: number | null; wsPath: string }
  // ?ws=wss://host/mqtt points the page at another listener (a proxy, a presence-only process)
  const override = new URLSearchParams(location.search).get('ws')
  if (!config.wsPort && !override) throw new Error('this Herald process has no MQTT over WebSocket listener')
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  state.me = userId
  state.token = token
  const client = await HeraldClient.connect({
    url: override ?? `${scheme}://${location.hostname}:${config.wsPort}${config.wsPath}`,
    httpUrl: location.origin,
    userId,
    token,
    catchUpAfter: '0',
  })
  state.client = client
  client.on('message', onMessage)
  client.on('receipt', onReceipt)
  client.on('online', onPresence)
  client.on('offline', onPresence)
  client.on('status', onPresence)
  $('signin').classList.add('hidden')
  $('app').classList.remove('hidden')
  $('whoami').textContent = `${userId} · ${client.deviceId}`
  client.on('disconnect', () => $('whoami').classList.add('reconnecting'))
  client.on('reconnect', () => $('whoami').classList.remove('reconnecting'))
  $('my-status').classList.remove('hidden')
  sessionStorage.setItem('herald-user', userId)
  sessionStorage.setItem('herald-token', token)
  const saved = JSON.parse(localStorage.getItem(`herald-roster-${userId}`) ?? '[]') as string[]
  for (const u of saved) await addPerson(u)
  setInterval(() => void refreshDevices(), 5000) // device counts; "5 min ago" keeps moving
}

async function main(): Promise<void> {
  const config = (await (await fetch('/web/config')).json()) as { devSignIn: boolean }
  if (config.devSignIn) $('dev-signin').classList.remove('hidden')
  const fail = (err: unknown) => {
    $('signin-error').textContent = err instanceof Error ? err.message : String(err)
  }
  $('signin-button').onclick = () =>
    void signIn($<HTMLInputElement>('user').value.trim(), $<HTMLInputElement>('token').value.trim()).catch(
      fail,
    )
  $('dev-signin').onclick = async () => {
    const userId = $<HTMLInputElement>('user').value.trim()
    const res = await fetch('/web/dev-token', { method: 'POST', body: JSON.stringify({ userId }) })
    const body = (await res.json()) as { token?: string; error?: { message: string } }
    if (!body.token) return fail(new Error(body.error?.message ?? 'sign-in refused'))
    await signIn(userId, body.token).catch(fail)
  }
  $<HTMLFormElement>('add-form').onsubmit = (e) => {
    e.preventDefault()
    const input = $<HTMLInputElement>('add-user')
    void addPerson(input.value.trim())
    input.value = ''
  }
  $<HTMLFormElement>('send-form').onsubmit = (e) => {
    e.preventDefault()
    const input = $<HTMLInputElement>('text')
    const to = state.open
    if (!to || !input.value || !state.client) return
    const id = globalThis.crypto.randomUUID()
    const line: ChatLine = { id, from: state.me, text: input.value, ticks: '' }
    chatWith(to).push(line)
    input.value = ''
    render()
    state.client.send(to, { text: line.text }, { id }).then(
      () => {
        if (!line.ticks) line.ticks = 'sent'
        render()
      },
      (err: unknown) => {
        line.ticks = 'failed'
        line.error = err instanceof RejectedError ? err.code : String(err)
        render()
      },
    )
  }
  $<HTMLSelectElement>('my-status').onchange = (e) => {
    const value = (e.target as HTMLSelectElement).value
    void state.client?.setStatus(value === 'available' ? null : value)
  }
  const user = sessionStorage.getItem('herald-user')
  const token = sessionStorage.getItem('herald-token')
  if (user && token) await signIn(user, token).catch(fail)
}

void main()
