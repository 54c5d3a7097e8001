import { createApp } from 'vue'
import App from './App.vue'
import './style.css'
import { connect } from './api.js'

createApp(App).mount('#app')
connect()
