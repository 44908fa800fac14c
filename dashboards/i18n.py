"""Thai and English labels for the dashboard, and Thai dates in the Buddhist era.

A plain dict table rather than gettext catalogues: the UI has a few hundred short labels, two languages,
and a test checks that every key has both, which a .po workflow would not give us for free.
Babel formats Thai month names but only in the Gregorian calendar (see LAB.md), so the Buddhist-era
date is written here: Gregorian year + 543 with Thai month names.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone, timedelta

LOGGER = logging.getLogger(__name__)

LANGUAGES = ("th", "en")

# Thailand has no daylight saving: a fixed +07:00 is exact.
THAI_TZ = timezone(timedelta(hours=7), "ICT")

THAI_MONTHS = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม", "สิงหาคม",
               "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")
THAI_MONTHS_SHORT = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.",
                     "พ.ย.", "ธ.ค.")
EN_MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: key -> (Thai, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "app_title": ("ระบบตรวจสอบกล้องวงจรปิด", "CCTV compliance monitor"),
    "app_subtitle": ("ทะเบียนและการตรวจรับกล้องโทรทัศน์วงจรปิด", "CCTV inventory and compliance"),
    "nav_overview": ("ภาพรวม", "Overview"),
    "nav_devices": ("อุปกรณ์", "Devices"),
    "nav_projects": ("โครงการ", "Projects"),
    "nav_unregistered": ("ไม่ได้ลงทะเบียน", "Unregistered"),
    "nav_scans": ("การสแกน", "Scans"),
    "nav_exports": ("ส่งออกข้อมูล", "Exports"),
    "nav_api": ("API", "API"),
    "nav_audit": ("บันทึกการตรวจสอบ", "Audit log"),
    "audit_title": ("บันทึกการตรวจสอบ (ใคร ทำอะไร เมื่อใด)", "Audit log (who did what, when)"),
    "audit_help": ("การเข้าสู่ระบบ การสแกน ตารางสแกน ทะเบียน ผู้ใช้ โทเคน และการส่งออกข้อมูล เวลาแสดงตามเวลาประเทศไทย",
                   "Log-ins, scans, schedules, registers, users, tokens and exports; times in Thai time"),
    "audit_time": ("เวลา", "Time"),
    "audit_actor": ("ผู้กระทำ", "Actor"),
    "audit_address": ("ที่อยู่ไคลเอนต์", "Client address"),
    "audit_action": ("การกระทำ", "Action"),
    "audit_object": ("รายการ", "Object"),
    "audit_detail": ("รายละเอียด", "Detail"),
    "audit_since": ("ตั้งแต่วันที่", "From"),
    "audit_until": ("ถึงวันที่", "To"),
    "logout": ("ออกจากระบบ", "Log out"),
    "login": ("เข้าสู่ระบบ", "Log in"),
    "login_title": ("เข้าสู่ระบบ", "Log in"),
    "username": ("ชื่อผู้ใช้", "Username"),
    "password": ("รหัสผ่าน", "Password"),
    "login_failed": ("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง", "Wrong username or password"),
    "login_throttled": ("เข้าสู่ระบบไม่สำเร็จหลายครั้งเกินไป กรุณารอ {seconds} วินาทีแล้วลองใหม่",
                        "Too many failed log-ins: wait {seconds} seconds, then try again"),
    "session_ended": ("เซสชันสิ้นสุดแล้ว กรุณาเข้าสู่ระบบอีกครั้ง", "Your session has ended; please log in again"),
    "login_required": ("กรุณาเข้าสู่ระบบก่อน", "Please log in first"),
    "logged_out": ("ออกจากระบบแล้ว", "You have logged out"),
    "switch_language": ("English", "ภาษาไทย"),
    "role": ("บทบาท", "Role"),
    "role_admin": ("ผู้ดูแลระบบ", "Administrator"),
    "role_auditor": ("ผู้ตรวจสอบ", "Auditor"),
    "role_technician": ("ช่างเทคนิค", "Technician"),
    "filters": ("ตัวกรอง", "Filters"),
    "apply": ("กรอง", "Apply"),
    "reset": ("ล้างตัวกรอง", "Reset"),
    "all": ("ทั้งหมด", "All"),
    "province": ("จังหวัด", "Province"),
    "district": ("อำเภอ", "District"),
    "agency": ("หน่วยงาน", "Agency"),
    "project": ("โครงการ", "Project"),
    "site": ("สถานที่ติดตั้ง", "Site"),
    "status": ("สถานะ", "Status"),
    "finding": ("ข้อตรวจพบ", "Finding"),
    "findings": ("ข้อตรวจพบ", "Findings"),
    "model": ("รุ่น", "Model"),
    "firmware": ("เฟิร์มแวร์", "Firmware"),
    "manufacturer": ("ผู้ผลิต", "Manufacturer"),
    "serial": ("หมายเลขเครื่อง", "Serial"),
    "hardware_id": ("รหัสฮาร์ดแวร์", "Hardware ID"),
    "mac": ("MAC", "MAC"),
    "macs": ("MAC ทั้งหมด", "All MACs"),
    "address": ("ที่อยู่ IP", "Address"),
    "addresses": ("ที่อยู่", "Addresses"),
    "xaddrs": ("ที่อยู่บริการ ONVIF", "ONVIF service addresses"),
    "name": ("ชื่อ", "Name"),
    "location": ("ตำแหน่ง", "Location"),
    "search": ("ค้นหา", "Search"),
    "search_hint": ("ชื่อ, IP, MAC, หมายเลขเครื่อง", "name, IP, MAC, serial"),
    "last_seen": ("พบล่าสุด", "Last seen"),
    "first_seen": ("พบครั้งแรก", "First seen"),
    "last_ok": ("อ่านได้ครบล่าสุด", "Last complete read"),
    "registered": ("ลงทะเบียน", "Registered"),
    "behind_recorder": ("ต่อผ่านเครื่องบันทึก", "Behind recorder"),
    "behind": ("ต่อผ่านเครื่องบันทึก", "Behind a recorder"),
    "behind_yes": ("เห็นผ่านเครื่องบันทึกเท่านั้น", "Seen only through a recorder"),
    "behind_no": ("มีที่อยู่ของตนเอง", "Own address"),
    "behind_recorders_tile": ("กล้องที่เห็นผ่านเครื่องบันทึกเท่านั้น", "Cameras seen only through recorders"),
    "channel": ("ช่อง", "Channel"),
    "recorder_channels": ("ช่องสัญญาณของเครื่องบันทึก", "Recorder channels"),
    "recorder_disks": ("ฮาร์ดดิสก์ของเครื่องบันทึก", "Recorder disks"),
    "retention_days": ("จำนวนวันที่เก็บบันทึกภาพ", "Days of video kept"),
    "online": ("ออนไลน์", "Online"),
    "capacity_gb": ("ความจุ (GB)", "Capacity (GB)"),
    "free_gb": ("พื้นที่ว่าง (GB)", "Free (GB)"),
    "yes": ("ใช่", "Yes"),
    "no": ("ไม่ใช่", "No"),
    "none": ("-", "-"),
    "total": ("ทั้งหมด", "Total"),
    "devices": ("อุปกรณ์", "Devices"),
    "device": ("อุปกรณ์", "Device"),
    "page": ("หน้า", "Page"),
    "of": ("จาก", "of"),
    "previous": ("ก่อนหน้า", "Previous"),
    "next": ("ถัดไป", "Next"),
    "per_page": ("ต่อหน้า", "per page"),
    "sort": ("เรียงตาม", "Sort by"),
    "no_rows": ("ไม่มีข้อมูล", "Nothing to show"),
    "rows_found": ("พบ {n} รายการ", "{n} found"),
    "overview_title": ("ภาพรวมกล้องวงจรปิด", "CCTV overview"),
    "chart_by_agency": ("สถานะตามหน่วยงาน", "Status per agency"),
    "chart_trend": ("แนวโน้มการตรงตามข้อกำหนด", "Compliance trend"),
    "chart_resolution": ("ความละเอียดภาพ", "Resolution mix"),
    "chart_codec": ("การเข้ารหัสวิดีโอ", "Codec mix"),
    "chart_findings": ("ข้อตรวจพบที่พบบ่อย", "Most frequent findings"),
    "compliance_rate": ("อัตราการตรงตามข้อกำหนด (%)", "Compliance rate (%)"),
    "count": ("จำนวน", "Count"),
    "date": ("วันที่", "Date"),
    "unknown": ("ไม่ทราบ", "Unknown"),
    "device_title": ("รายละเอียดอุปกรณ์", "Device detail"),
    "identity": ("ข้อมูลประจำเครื่อง", "Identity"),
    "profiles": ("โปรไฟล์สื่อ (ONVIF อ้างว่า / วัดจากสตรีม)", "Media profiles (ONVIF claims / stream measured)"),
    "profile": ("โปรไฟล์", "Profile"),
    "claimed": ("ONVIF อ้างว่า", "ONVIF claims"),
    "measured": ("วัดจากสตรีม", "Stream measured"),
    "resolution": ("ความละเอียด", "Resolution"),
    "codec": ("การเข้ารหัส", "Codec"),
    "fps": ("เฟรมต่อวินาที", "Frames per second"),
    "bitrate": ("บิตเรต (kbps)", "Bitrate (kbps)"),
    "stream_uri": ("ที่อยู่สตรีม", "Stream URI"),
    "accepted_user": ("ผู้ใช้ ONVIF ที่กล้องยอมรับ", "ONVIF user accepted"),
    "unread_reason": ("สาเหตุที่อ่านไม่ได้", "Why it could not be read"),
    "clock_offset": ("นาฬิกาคลาดเคลื่อน (วินาที)", "Clock offset (s)"),
    "current_findings": ("ข้อตรวจพบปัจจุบัน", "Current findings"),
    "rule": ("กฎ", "Rule"),
    "severity": ("ระดับ", "Severity"),
    "expected": ("ที่กำหนด", "Expected"),
    "observed": ("ที่ตรวจพบ", "Observed"),
    "source": ("ที่มาของข้อกำหนด", "Source of the requirement"),
    "message": ("รายละเอียด", "Message"),
    "subject": ("เรื่อง", "Subject"),
    "since": ("ตั้งแต่", "Since"),
    "history": ("ประวัติการตรวจ", "Observation history"),
    "changes": ("การเปลี่ยนแปลงคุณสมบัติ", "Attribute changes"),
    "attribute": ("คุณสมบัติ", "Attribute"),
    "old_value": ("ค่าเดิม", "Before"),
    "new_value": ("ค่าใหม่", "After"),
    "observed_at": ("เวลาตรวจ", "Observed at"),
    "probe_status": ("ผลการตรวจ", "Probe result"),
    "error": ("ข้อผิดพลาด", "Error"),
    "errors": ("ข้อผิดพลาด", "Errors"),
    "thumbnail": ("ภาพล่าสุด", "Latest thumbnail"),
    "no_thumbnail": ("ยังไม่มีภาพ", "No thumbnail yet"),
    "identity_conflict": ("ข้อมูลประจำเครื่องขัดแย้ง", "Identity conflict"),
    "projects_title": ("โครงการที่ได้รับอนุมัติ", "Approved projects"),
    "approved": ("อนุมัติ", "Approved"),
    "found": ("พบ", "Found"),
    "compliant_count": ("ตรงตามข้อกำหนด", "Compliant"),
    "spec_profile": ("ข้อกำหนดกล้อง", "Spec profile"),
    "approval_ref": ("เลขที่อนุมัติ", "Approval reference"),
    "approval_date": ("วันที่อนุมัติ", "Approval date"),
    "budget": ("งบประมาณ (บาท)", "Budget (THB)"),
    "committee_level": ("ระดับคณะกรรมการ", "Committee level"),
    "sites": ("สถานที่ติดตั้ง", "Sites"),
    "address_ranges": ("ช่วงที่อยู่", "Address ranges"),
    "acceptance": ("รายงานการตรวจรับครั้งล่าสุด", "Acceptance report of the last check"),
    "no_check": ("ยังไม่เคยตรวจรับ", "No check has been run yet"),
    "project_findings": ("ข้อตรวจพบระดับโครงการ", "Project-level findings"),
    "register": ("ทะเบียนอุปกรณ์", "Device register"),
    "label": ("ป้ายชื่อ", "Label"),
    "added_by": ("เพิ่มโดย", "Added by"),
    "matched_device": ("อุปกรณ์ที่พบ", "Matched device"),
    "not_found": ("ไม่พบ", "Not found"),
    "unregistered_title": ("อุปกรณ์ที่ไม่ได้ลงทะเบียน", "Unregistered devices"),
    "assign": ("เพิ่มเข้าทะเบียน", "Add to register"),
    "assign_to": ("เพิ่มเข้าทะเบียนของโครงการ", "Add to the register of project"),
    "assign_help": ("เลือกอุปกรณ์แล้วเลือกโครงการและสถานที่ เพื่อเพิ่มเข้าทะเบียน",
                    "Select devices, then a project and site to add them to its register"),
    "assigned": ("เพิ่ม {n} อุปกรณ์เข้าทะเบียนโครงการ {project} แล้ว", "Added {n} device(s) to the register of {project}"),
    "assign_none": ("ยังไม่ได้เลือกอุปกรณ์", "No device selected"),
    "assign_forbidden": ("คุณไม่มีสิทธิ์เพิ่มอุปกรณ์เข้าทะเบียน", "You may not change registers"),
    "assign_bad_site": ("สถานที่ไม่ได้อยู่ในโครงการนี้", "That site is not part of this project"),
    "select_all": ("เลือกทั้งหมด", "Select all"),
    "scans_title": ("การสแกน", "Scans"),
    "scan_now": ("สแกนทันที", "Scan now"),
    "scan_started": ("เริ่มสแกน {target} แล้ว (รายการที่ {id})", "Scan of {target} started (run {id})"),
    "scan_unavailable": ("ยังไม่มีระบบสแกนในชุดติดตั้งนี้ ปุ่มสแกนทันทีจึงถูกซ่อน",
                         "The scan pipeline is not installed here, so \"scan now\" is hidden"),
    "scan_forbidden": ("คุณสแกนได้เฉพาะสถานที่ของหน่วยงานตนเอง", "You may only scan your own agency's sites"),
    "with_streams": ("ตรวจสตรีมด้วย", "Also measure streams"),
    "target": ("เป้าหมาย", "Target"),
    "trigger": ("เริ่มโดย", "Trigger"),
    "state": ("สถานะการทำงาน", "State"),
    "started": ("เริ่ม", "Started"),
    "finished": ("เสร็จ", "Finished"),
    "duration": ("ใช้เวลา", "Duration"),
    "progress": ("ความคืบหน้า", "Progress"),
    "counts": ("จำนวนตามสถานะ", "Counts per status"),
    "started_by": ("ผู้สั่ง", "Started by"),
    "runs": ("รายการสแกน", "Scan runs"),
    "units": ("หน่วยงานสแกน", "Work units"),
    "unit_queued": ("รอคิว", "queued"),
    "unit_running": ("กำลังทำ", "running"),
    "unit_done": ("เสร็จ", "done"),
    "unit_failed": ("ล้มเหลว", "failed"),
    "unit_expired": ("หมดเวลา", "expired"),
    "zone": ("โซนเครือข่าย", "Zone"),
    "zone_workers": ("เครื่องสแกนประจำโซน", "Zone workers"),
    "zone_workers_unknown": ("ติดต่อตัวกลางส่งงาน (broker) ไม่ได้ จึงไม่ทราบว่ามีเครื่องสแกนใดทำงานอยู่",
                             "The broker did not answer: which zone workers run is unknown"),
    "no_zone_worker": ("ไม่มีเครื่องสแกนตอบ", "no worker answered"),
    "schedules": ("ตารางสแกนอัตโนมัติ", "Scan schedules"),
    "schedule_new": ("เพิ่มตารางสแกน", "Add a schedule"),
    "schedule_edit": ("แก้ไข", "Edit"),
    "schedule_saved": ("บันทึกตารางสแกนแล้ว", "Schedule saved"),
    "schedule_deleted": ("ลบตารางสแกนแล้ว", "Schedule deleted"),
    "schedule_forbidden": ("เฉพาะผู้ดูแลระบบแก้ไขตารางสแกนได้", "Only administrators may edit schedules"),
    "schedule_need_one": ("กรุณาระบุ cron หรือช่วงเวลา (นาที) อย่างใดอย่างหนึ่ง",
                          "Give either a cron expression or an interval in minutes, not both"),
    "schedule_bad_cron": ("รูปแบบ cron ไม่ถูกต้อง: {error}", "Invalid cron expression: {error}"),
    "schedule_not_synced": ("บันทึกแล้ว แต่ตัวจัดตารางยังไม่ได้โหลดใหม่ (ไม่มีตัวจัดตารางในชุดนี้)",
                            "Saved; the scheduler was not reloaded (no scheduler installed here)"),
    "cron": ("cron (นาที ชั่วโมง วัน เดือน วันในสัปดาห์)", "cron (min hour dom mon dow)"),
    "interval_minutes": ("ทุก ๆ (นาที)", "Every (minutes)"),
    "enabled": ("เปิดใช้", "Enabled"),
    "save": ("บันทึก", "Save"),
    "delete": ("ลบ", "Delete"),
    "last_run": ("สแกนล่าสุด", "Last run"),
    "exports_title": ("ส่งออกข้อมูล", "Exports"),
    "exports_help": ("ส่งออกตามตัวกรองที่เลือกในหน้ารายการอุปกรณ์ (CSV เปิดใน Excel ได้ ภาษาไทยแสดงถูกต้อง)",
                     "Exports use the filters of the device table (the CSV opens in Excel with Thai intact)"),
    "export_devices": ("ส่งออกอุปกรณ์", "Export devices"),
    "export_findings": ("ส่งออกข้อตรวจพบ", "Export findings"),
    "api_help": ("เอกสาร OpenAPI", "OpenAPI document"),
    "forbidden": ("คุณไม่มีสิทธิ์เข้าถึงหน้านี้", "You may not open this page"),
    "not_found_page": ("ไม่พบหน้าที่ต้องการ", "Page not found"),
    "server_error": ("เกิดข้อผิดพลาดภายในระบบ", "Internal error"),
    "bad_request": ("คำขอไม่ถูกต้อง", "Bad request"),
    "csrf_error": ("แบบฟอร์มหมดอายุ กรุณาลองอีกครั้ง", "The form expired, please try again"),
    "back": ("กลับ", "Back"),
    "open": ("เปิด", "Open"),
    "details": ("รายละเอียด", "Details"),
    "signed_in_as": ("ผู้ใช้", "Signed in as"),
    "never": ("ไม่เคย", "Never"),
    "running": ("กำลังทำงาน", "Running"),
    "kind": ("ประเภท", "Kind"),
    "value": ("ค่า", "Value"),
    "status_tiles": ("จำนวนอุปกรณ์ตามสถานะ", "Devices per status"),
    "language": ("ภาษา", "Language"),
    "seconds_short": ("วินาที", "s"),
    "minutes_short": ("นาที", "min"),
}


def translate(key: str, lang: str, **values: object) -> str:
    """Label ``key`` in ``lang``; unknown keys come back as the key (and are logged) so a page never breaks."""
    pair = MESSAGES.get(key)
    if pair is None:
        LOGGER.warning("missing translation key %s", key)
        text = key
    else:
        text = pair[0] if lang == "th" else pair[1]
    return text.format(**values) if values else text


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(THAI_TZ)


def format_date(value: date | datetime | None, lang: str, *, short: bool = False) -> str:
    """A date as Thai readers expect (25 ตุลาคม 2567: Buddhist era) or in English (25 Oct 2024)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        value = _local(value).date()
    if lang == "th":
        months = THAI_MONTHS_SHORT if short else THAI_MONTHS
        return f"{value.day} {months[value.month - 1]} {value.year + 543}"
    return f"{value.day} {EN_MONTHS_SHORT[value.month - 1]} {value.year}"


def format_datetime(value: datetime | None, lang: str) -> str:
    """Date and time (Thailand time, 24 h clock) with a Buddhist-era year in Thai."""
    if value is None:
        return "-"
    local = _local(value)
    return f"{format_date(local, lang, short=True)} {local:%H:%M}"


def format_duration(seconds: float | None, lang: str) -> str:
    """A duration as ``1 min 5 s`` / ``1 นาที 5 วินาที``."""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    s_label, m_label = translate("seconds_short", lang), translate("minutes_short", lang)
    if minutes:
        return f"{minutes} {m_label} {secs} {s_label}"
    return f"{secs} {s_label}"


#: rule id -> (Thai, English) short names for filters, charts and exports (rule ids of cctv_monitor.compliance).
RULE_LABELS: dict[str, tuple[str, str]] = {
    "resolution": ("ความละเอียดต่ำกว่าที่กำหนด", "Resolution below spec"),
    "fps": ("อัตราเฟรมต่ำกว่าที่กำหนด", "Frame rate below spec"),
    "codec": ("การเข้ารหัสไม่ตรงข้อกำหนด", "Codec not allowed"),
    "stream_count": ("จำนวนสตรีมไม่พอ", "Too few streams"),
    "onvif_profile": ("ไม่รองรับ ONVIF Profile ที่กำหนด", "ONVIF profile not supported"),
    "clock": ("นาฬิกาคลาดเคลื่อน", "Clock skew"),
    "firmware": ("เฟิร์มแวร์ไม่ตรงข้อกำหนด", "Firmware not allowed"),
    "bitrate": ("บิตเรตไม่อยู่ในช่วงที่กำหนด", "Bitrate out of bounds"),
    "bitrate_placeholder": ("บิตเรตเป็นค่าหลอก", "Placeholder bitrate"),
    "channels": ("จำนวนช่องสัญญาณไม่ตรง", "Channel count"),
    "stream_resolution": ("ความละเอียดสตรีมจริงไม่ตรงกับที่ ONVIF แจ้ง", "Stream resolution differs from ONVIF"),
    "stream_fps": ("อัตราเฟรมสตรีมจริงไม่ตรงกับที่ ONVIF แจ้ง", "Stream frame rate differs from ONVIF"),
    "stream_gop": ("ระยะห่างคีย์เฟรมจริงไม่ตรงกับ GovLength ที่ ONVIF แจ้ง", "Keyframe interval differs from ONVIF GovLength"),
    "stream_codec": ("การเข้ารหัสสตรีมจริงไม่ตรงกับที่ ONVIF แจ้ง", "Stream codec differs from ONVIF"),
    "stream_unreachable": ("เปิดสตรีมหลักไม่ได้", "Main stream cannot be opened"),
    "stream_unreachable_secondary": ("เปิดสตรีมรองไม่ได้", "Secondary stream cannot be opened"),
    "image_black": ("ภาพดำ", "Black picture"),
    "image_frozen": ("ภาพค้าง", "Frozen picture"),
    "image_low_detail": ("ภาพรายละเอียดต่ำ", "Low-detail picture"),
    "image_blur": ("ภาพพร่ามัวหรือเลนส์ถูกปิดบัง", "Blurred picture or covered lens"),
    "onvif_unreachable": ("อ่านข้อมูล ONVIF ไม่ได้", "ONVIF cannot be read"),
    "not_activated": ("อุปกรณ์ยังไม่เปิดใช้งาน (ไม่มีรหัสผ่าน)", "Device never activated (no password)"),
    "unregistered": ("ไม่ได้ลงทะเบียน", "Not registered"),
    "registered_missing": ("ลงทะเบียนแต่ไม่พบ", "Registered but not found"),
    "count_shortfall": ("จำนวนกล้องน้อยกว่าที่อนุมัติ", "Fewer cameras than approved"),
    "foreign_media_host": ("กล้องระบุที่อยู่เครื่องอื่น", "Camera names another host"),
    "onvif_off": ("ปิด ONVIF ไว้ (ข้อมูล)", "ONVIF switched off (information)"),
    "retention": ("เก็บบันทึกภาพน้อยกว่าที่กำหนด", "Fewer days of video kept than required"),
    "disk_failed": ("ฮาร์ดดิสก์เครื่องบันทึกเสีย", "Recorder disk failed"),
    "disk_missing": ("ฮาร์ดดิสก์เครื่องบันทึกไม่ครบ", "Recorder disk missing"),
    "channel_not_recording": ("ช่องสัญญาณไม่ได้บันทึกภาพ", "Channel not recording"),
}


def rule_label(rule_id: str, lang: str) -> str:
    """Short name of a rule id in ``lang`` (the id itself for rules this table does not know)."""
    pair = RULE_LABELS.get(rule_id)
    if pair is None:
        return rule_id
    return pair[0] if lang == "th" else pair[1]
