"""The blank project spreadsheet a clerk fills in: Thai headings, one example row, a sheet explaining each column.

``cctv-monitor template projects.xlsx`` writes it; ``import-projects`` reads it back. The example row is a
valid project except for its code, :data:`~cctv_monitor.spreadsheet.EXAMPLE_CODE`, which the import skips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from cctv_monitor.spreadsheet import CSV_COLUMNS, EXAMPLE_CODE, TH_HEADERS

__all__ = ["TH_HELP", "EXAMPLE_ROW", "write_template"]

#: What each column means, in Thai (the explanation sheet; the README has the same in English).
TH_HELP: dict[str, str] = {
    "project_code": "รหัสโครงการ ไม่ซ้ำกัน ใช้ตัวอักษรอังกฤษ ตัวเลข . _ - (ต้องกรอกทุกแถว)",
    "project_title_th": "ชื่อโครงการตามหนังสืออนุมัติ",
    "project_title_en": "ชื่อโครงการภาษาอังกฤษ (ไม่บังคับ)",
    "agency_code": "รหัสหน่วยงาน ใช้ตัวอักษรอังกฤษ ตัวเลข . _ - เช่น maesai-mun",
    "agency_name_th": "ชื่อหน่วยงานเจ้าของโครงการ",
    "agency_name_en": "ชื่อหน่วยงานภาษาอังกฤษ (ไม่บังคับ)",
    "province": "จังหวัดที่ตั้งหน่วยงาน",
    "district": "อำเภอ (ไม่บังคับ)",
    "subdistrict": "ตำบล (ไม่บังคับ ต้องกรอกอำเภอด้วย)",
    "approval_ref": "เลขที่หนังสืออนุมัติ",
    "approval_date": "วันที่อนุมัติ เช่น 14/02/2568 (ปีพุทธศักราช) หรือเซลล์วันที่",
    "committee_level": "ระดับคณะกรรมการที่อนุมัติ: province (จังหวัด) หรือ ministry (กระทรวง)",
    "budget_thb": "งบประมาณที่อนุมัติ (บาท) ใส่เครื่องหมายจุลภาคได้ (ไม่บังคับ)",
    "spec_profile": "ข้อกำหนดคุณลักษณะของกล้อง: รหัสหรือชื่อภาษาไทยเต็มตามตารางด้านล่าง",
    "approved_count": "จำนวนกล้องที่ได้รับอนุมัติ",
    "site_code": "รหัสจุดติดตั้ง ไม่ซ้ำกันภายในโครงการ เช่น market",
    "site_name_th": "ชื่อจุดติดตั้ง",
    "site_name_en": "ชื่อจุดติดตั้งภาษาอังกฤษ (ไม่บังคับ)",
    "site_address_ranges": "ช่วงหมายเลขไอพีของกล้องที่จุดนี้ เช่น 192.168.1.0/24 หรือ 192.168.1.11-192.168.1.18 "
                           "หรือ 192.168.1.11-18 หรือ 192.168.1.7:8000 หลายช่วงคั่นด้วย ;",
    "site_ports": "พอร์ต ONVIF ที่ต้องตรวจ คั่นด้วย ; (ไม่บังคับ)",
    "site_latitude": "ละติจูดของจุดติดตั้ง (ไม่บังคับ)",
    "site_longitude": "ลองจิจูดของจุดติดตั้ง (ไม่บังคับ)",
    "site_username": "ชื่อผู้ใช้ ONVIF ของกล้องที่จุดนี้ (ไม่บังคับ)",
    "site_password_env": "ชื่อตัวแปรสภาพแวดล้อมที่เก็บรหัสผ่าน (ไม่บังคับ)",
    "site_password": "รหัสผ่าน ONVIF (เก็บแบบเข้ารหัสในฐานข้อมูล ไม่บังคับ)",
    "camera_label": "ชื่อกล้องในทะเบียน เช่น ตลาด-01 (ใช้ในรายงานตรวจรับ)",
    "mac": "หมายเลข MAC ของกล้อง เขียนแบบใดก็ได้ เช่น C0-56-E3-00-01-0B (ต้องมี MAC หรือหมายเลขเครื่อง)",
    "serial": "หมายเลขเครื่อง (serial number) ของกล้อง",
    "camera_location": "ตำแหน่งที่ติดตั้งกล้อง (ไม่บังคับ)",
    "camera_address": "หมายเลขไอพีของกล้อง เช่น 192.168.1.11:80 (ไม่บังคับ)",
}

#: One example row (Mae Sai, Chiang Rai); its code makes the import skip it, so a forgotten one does no harm.
EXAMPLE_ROW: dict[str, object] = {
    "project_code": EXAMPLE_CODE, "project_title_th": "โครงการติดตั้งกล้องโทรทัศน์วงจรปิด ตลาดตัวอย่าง",
    "agency_code": "maesai-mun", "agency_name_th": "เทศบาลตำบลแม่สาย", "province": "เชียงราย",
    "district": "แม่สาย", "subdistrict": "แม่สาย", "approval_ref": "ชร 0023.3/0000", "approval_date": "14/02/2568",
    "committee_level": "province", "budget_thb": "1,860,000", "spec_profile": "fixed_outdoor",
    "approved_count": 12, "site_code": "market", "site_name_th": "ตลาดตัวอย่าง",
    "site_address_ranges": "192.168.1.11-192.168.1.22", "site_ports": "80",
    "camera_label": "ตลาด-01", "mac": "C0-56-E3-99-00-01", "camera_location": "ทางเข้าตลาด ด้านทิศเหนือ",
}


def write_template(path: Path, profiles: Iterable[tuple[str, str]]) -> None:
    """Write the XLSX template: sheet ``projects`` (Thai headings, example row), sheet ``คำอธิบาย``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    columns = list(CSV_COLUMNS)
    book = Workbook()
    sheet = book.active
    sheet.title = "projects"
    sheet.append([TH_HEADERS[c] for c in columns])
    sheet.append([EXAMPLE_ROW.get(c) for c in columns])
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    grey = Font(italic=True, color="808080")
    for index, column in enumerate(columns, 1):
        head = sheet.cell(row=1, column=index)
        head.font, head.fill = bold, fill
        sheet.column_dimensions[head.column_letter].width = max(14, len(TH_HEADERS[column]) + 4)
        sheet.cell(row=2, column=index).number_format = "@"  # dates and MACs stay as typed
        sheet.cell(row=2, column=index).font = grey
    sheet.freeze_panes = "A2"

    help_sheet = book.create_sheet("คำอธิบาย")
    help_sheet.append(["หัวคอลัมน์", "ชื่อคอลัมน์ภาษาอังกฤษ (ใช้แทนได้)", "ความหมาย", "ตัวอย่าง"])
    for column in columns:
        help_sheet.append([TH_HEADERS[column], column, TH_HELP[column], EXAMPLE_ROW.get(column)])
    help_sheet.append([])
    help_sheet.append(["ข้อกำหนด (spec_profile) ที่ใช้ได้"])
    help_sheet.append(["รหัส", "ชื่อภาษาไทย (ใช้แทนรหัสได้)"])
    for code, name_th in profiles:
        help_sheet.append([code, name_th])
    help_sheet.append([])
    help_sheet.append([f"แถวตัวอย่าง (รหัสโครงการ {EXAMPLE_CODE}) จะไม่ถูกนำเข้า เขียนทับหรือลบได้"])
    help_sheet.append(["หนึ่งแถวต่อกล้องหนึ่งตัว คอลัมน์ของโครงการและจุดติดตั้งกรอกซ้ำทุกแถวหรือเว้นว่างหลังแถวแรกได้ "
                       "แต่ห้ามเปลี่ยนค่า คอลัมน์ชื่อ หมายเหตุ จะไม่ถูกนำเข้า"])
    for row in help_sheet.iter_rows(min_row=1, max_row=1):
        for item in row:
            item.font, item.fill = bold, fill
    for letter, width in (("A", 24), ("B", 30), ("C", 90), ("D", 30)):
        help_sheet.column_dimensions[letter].width = width
    for row in help_sheet.iter_rows():
        for item in row:
            item.alignment = Alignment(wrap_text=True, vertical="top")
    book.save(path)
