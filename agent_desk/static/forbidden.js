"use strict";
Desk.applyLang();
